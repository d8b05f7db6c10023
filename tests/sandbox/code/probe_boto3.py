# Baseline mode imports the real boto3 and builds an S3 client (no request).
import boto3
c = boto3.client('s3', region_name='us-east-1', endpoint_url='http://127.0.0.1:1',
                 aws_access_key_id='x', aws_secret_access_key='y')
print('boto3 ok', c.meta.region_name)
